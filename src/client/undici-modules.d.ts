// Types of the undici modules that client/undici.ts imports by path (undici declares only its index).
declare module "undici/lib/dispatcher/agent.js" {
  import type { Agent } from "undici";
  const AgentModule: typeof Agent;
  export default AgentModule;
}
declare module "undici/lib/dispatcher/proxy-agent.js" {
  import type { ProxyAgent } from "undici";
  const ProxyAgentModule: typeof ProxyAgent;
  export default ProxyAgentModule;
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  const DispatcherModule: { prototype: object };
  export default DispatcherModule;
}
declare module "undici/lib/api/index.js" {
  /** request, stream, pipeline, connect, upgrade: methods with a dispatcher as `this`. */
  const api: Record<string, unknown>;
  export default api;
}
