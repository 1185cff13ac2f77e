// `kubeloop run --otel`: the OpenTelemetry Node SDK with its OTLP trace exporter, set up from the
// standard OTEL_* environment variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, …), for users who want traces
// without code. The SDK is an optional peer dependency: kubeloop itself needs only
// @opentelemetry/api. No automatic instrumentation is added: kubeloop's own spans (reconciles,
// handler attempts, API calls, webhooks) are the trace.
import type * as SdkNode from "@opentelemetry/sdk-node";
import type { Logger } from "pino";

/** A started SDK: `shutdown()` flushes the spans still buffered. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/** Starts the SDK for `service` (unless OTEL_SERVICE_NAME names one); fails naming the package when it is not installed. */
export async function startTracing(service: string, env: NodeJS.ProcessEnv, logger: Logger, load: () => Promise<typeof SdkNode> = () => import("@opentelemetry/sdk-node")): Promise<Tracing> {
  let sdkNode: typeof SdkNode;
  try {
    sdkNode = await load();
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND" || !/@opentelemetry\/sdk-node/.test((error as Error).message)) throw error;
    throw new Error("--otel needs the OpenTelemetry Node SDK, which is not installed: `npm install @opentelemetry/sdk-node` (its OTLP exporters come with it)", { cause: error });
  }
  const sdk = new sdkNode.NodeSDK({ ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: service }), instrumentations: [] });
  sdk.start();
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "the OTLP default (localhost:4318)";
  logger.info({ endpoint, exporter: env.OTEL_TRACES_EXPORTER ?? "otlp" }, "tracing: the OpenTelemetry SDK exports kubeloop's spans");
  return { shutdown: () => sdk.shutdown() };
}
