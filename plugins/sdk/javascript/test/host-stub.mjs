// Resolves the host's import to a stub for the SDK's tests in Node (no host there).
export async function resolve(specifier, context, next) {
  if (specifier === "wasm-ipc:component/host@0.1.0") {
    return { url: "data:text/javascript,export const port = () => undefined;", shortCircuit: true };
  }
  return next(specifier, context);
}
