// kubeloop: the public facade. Re-exports only; see shared/DESIGN.md for the layers.
export const VERSION = "0.1.0";
