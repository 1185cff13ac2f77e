// The command line's argument parsing: Node's own parseArgs, with its errors turned into one line
// that names the problem. parseArgs covers what the commands take (flags, short names, repeated
// flags, `--`); a parsing library would add a dependency for help texts we write by hand anyway.

/**
 * A mistake in how a command was called (an unknown option, a missing argument, a value out of
 * range): `kubeloop` prints `kubeloop <command>: <message>` and a pointer to the command's
 * `--help` on stderr, and exits 2.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Runs `parse` (a strict parseArgs call); its mistakes become {@link UsageError}s naming the option or argument. */
export function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw usageFrom(error);
  }
}

/** parseArgs' error, in a line; anything else as it is. */
function usageFrom(error: unknown): unknown {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError(`unknown option '${quoted ?? message}'`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      // "Option '-n, --namespace <value>' argument missing" or "Option '--help' does not take an argument"
      const option = quoted?.replace(/ <value>$/, "") ?? "an option";
      return new UsageError(/does not take/.test(message) ? `${option} takes no value` : `${option} needs a value`);
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError(`unexpected argument '${quoted ?? message}'`);
    default:
      return error;
  }
}
