// A TCP proxy that sits between a client and the real API server and injects network faults:
// cut every connection, go silent (a hung stream), refuse new connections. TLS passes through
// untouched (the API server's certificate names 127.0.0.1), so the client talks to the real
// server in every other respect.
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import * as YAML from "yaml";

/** A running fault-injecting proxy. */
export class FaultProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private silent = false;
  private refusing = false;
  /** Connections accepted since start. */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** Starts a proxy on a free loopback port forwarding to `target` (e.g. the API server's URL). */
  static async start(target: string | URL): Promise<FaultProxy> {
    const url = new URL(target);
    const upstream = { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 443) };
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const proxy = new FaultProxy(server, (server.address() as AddressInfo).port, upstream);
    server.on("connection", (client) => proxy.accept(client));
    return proxy;
  }

  /** `https://127.0.0.1:<port>`: the address clients should use. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Open connections. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Destroys every open connection (clients see a reset). */
  cutAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Stops passing bytes on every connection, open or new, until {@link heal}: a hung stream. */
  hang(): void {
    this.silent = true;
    for (const pair of this.pairs) stopFlow(pair);
  }

  /** Closes new connections at once until {@link heal}. */
  refuse(): void {
    this.refusing = true;
  }

  /** Ends `hang()` and `refuse()`: hung connections pass bytes again; the others are left as they are. */
  heal(): void {
    this.silent = false;
    this.refusing = false;
    for (const pair of this.pairs) startFlow(pair);
  }

  /** Writes a copy of `kubeconfigPath` whose server is this proxy; returns its path. */
  rewriteKubeconfig(kubeconfigPath: string, outputPath: string): string {
    const doc = YAML.parse(readFileSync(kubeconfigPath, "utf8"));
    for (const cluster of doc.clusters ?? []) cluster.cluster.server = this.url;
    writeFileSync(outputPath, YAML.stringify(doc), { mode: 0o600 });
    return outputPath;
  }

  /** Cuts everything and stops listening. */
  async close(): Promise<void> {
    this.cutAll();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    if (this.silent) stopFlow(pair);
    else startFlow(pair);
  }
}

// Unpiping (rather than pause()) is what keeps bytes from moving: a pipe resumes a paused source
// on 'drain'. A pair that flows already is left alone: piping it again would write every byte
// twice (a heal() with nothing hung corrupted each open TLS connection so).
function startFlow([client, upstream]: [Socket, Socket]): void {
  if (client.readableFlowing) return;
  client.pipe(upstream);
  upstream.pipe(client);
}

function stopFlow([client, upstream]: [Socket, Socket]): void {
  client.unpipe(upstream);
  upstream.unpipe(client);
  client.pause();
  upstream.pause();
}
