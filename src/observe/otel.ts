// The Operator's `otel` option and `kubeloop run --otel`: the OpenTelemetry Node SDK with its OTLP
// trace exporter, set up from the standard OTEL_* environment variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
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

/**
 * Starts the SDK with `service` as the service name (OTEL_SERVICE_NAME, which the SDK reads, wins);
 * fails naming the package when it is not installed.
 */
export async function startTracing(service: string, logger: Logger, load: () => Promise<typeof SdkNode> = () => import("@opentelemetry/sdk-node")): Promise<Tracing> {
  let sdkNode: typeof SdkNode;
  try {
    sdkNode = await load();
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND" || !/@opentelemetry\/sdk-node/.test((error as Error).message)) throw error;
    throw new Error("tracing (otel) needs the OpenTelemetry Node SDK, which is not installed: `npm install @opentelemetry/sdk-node` (its OTLP exporters come with it)", { cause: error });
  }
  // The service name as the base resource: the SDK's environment detector (OTEL_SERVICE_NAME,
  // OTEL_RESOURCE_ATTRIBUTES) merges over it, where `serviceName` would override them.
  const resource = sdkNode.resources.resourceFromAttributes({ "service.name": service });
  const sdk = new sdkNode.NodeSDK({ resource, instrumentations: [] });
  sdk.start();
  logger.info({ service }, "tracing: the OpenTelemetry SDK exports kubeloop's spans (OTLP, configured by the OTEL_* variables)");
  return { shutdown: () => sdk.shutdown() };
}
