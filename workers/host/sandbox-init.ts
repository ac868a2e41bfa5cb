import { Child } from 'bullmq';

const patched = Symbol('tfjs-adapt: init fails on exit');

/**
 * BullMQ's sandbox never settles the start of a child process that dies while it loads the
 * processor (a SIGKILL, or the OOM killer while tfjs loads): Child drops every listener on
 * 'exit', before the 'close' that its init waits for. The job then holds its worker slot, its
 * lock renewed, forever: never retried, never taken over. Failing the init on 'exit', with
 * the message BullMQ gives a child that dies mid-job, makes it an attempt that crashed like
 * any other, and the job is retried.
 */
export function failChildInitOnExit(): void {
  const proto = Child.prototype as Child & { [patched]?: true };
  if (proto[patched]) return;
  proto[patched] = true;
  const init = proto.init;
  proto.init = function (this: Child) {
    const died = new Promise<never>((_, reject) =>
      this.once('exit', (code: number | null, signal: string | null) => reject(new Error(`Unexpected exit code: ${code} signal: ${signal}`))),
    );
    // a child that exits after a good start rejects `died` too, which race has already handled
    return Promise.race([init.call(this), died]);
  };
}
