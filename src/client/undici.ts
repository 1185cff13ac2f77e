// The parts of undici the transport uses, imported from their own modules: two dispatchers and
// the request API. undici's index loads all of undici (fetch, WebSocket, caches, mock agents:
// ~1.2 MB of source), which was about half of `import("kubeloop")`; these parts and what they
// need are about a third of that. Like the index, this installs the request API (request,
// stream, pipeline, connect, upgrade) on Dispatcher.prototype: undici's own dispatchers call it
// (ProxyAgent connects through it). The same functions, so loading undici's index as well
// changes nothing.
// undici has no "exports" map, so the paths are files of the package as published; if a release
// moved them, every test that makes a request would fail at import.
// The reference brings the modules' declarations into any program that compiles this file (a
// user's, through `paths` to src/, included).
// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- an ambient declaration file cannot be imported
/// <reference path="./undici-modules.d.ts" />
import type * as Undici from "undici";
import type { Dispatcher } from "undici";
import AgentModule from "undici/lib/dispatcher/agent.js";
import DispatcherModule from "undici/lib/dispatcher/dispatcher.js";
import ProxyAgentModule from "undici/lib/dispatcher/proxy-agent.js";
import api from "undici/lib/api/index.js";

Object.assign(DispatcherModule.prototype, api);

export const Agent: typeof Undici.Agent = AgentModule;
export const ProxyAgent: typeof Undici.ProxyAgent = ProxyAgentModule;
export type { Dispatcher };
