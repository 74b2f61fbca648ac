// Entry of `npm run hub -- <command>`: the operator CLI (see scripts/cli.ts).
import { runCli } from './cli.ts';

runCli(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  progress: (line, redraw) => process.stderr.write(redraw ? `\r\x1b[2K${line}` : line ? `${line}\n` : '\n'),
  tty: process.stderr.isTTY === true,
})
  .then((code) => process.exit(code))
  .catch((err: unknown) => {
    process.stderr.write(`The command failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
