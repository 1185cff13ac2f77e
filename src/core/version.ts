// The package version, in one place (the client's user agent and the facade read it here).
// Kept equal to package.json's "version" (a unit test checks it).
/** The version of kubeloop (package.json's). */
export const VERSION = "0.1.0";
