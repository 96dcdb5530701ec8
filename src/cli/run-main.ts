// How every command-line entry point ends: a ZksError prints its message and stable code, a bad flag points at
// the command's help, anything else is an unexpected error; all exit 1.

import { ZksError } from '../errors/zks-error';

export function runMain(program: string, main: (argv: string[]) => Promise<void>): void {
  main(process.argv.slice(2)).catch((err: unknown) => {
    if (err instanceof ZksError) console.error(`${program}: ${err.message} [${err.code}]`);
    else if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${program}: ${err.message} (see \`${program} help\`)`);
    } else console.error(`${program}: unexpected error:`, err);
    process.exit(1);
  });
}
