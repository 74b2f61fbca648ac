// A loop's sleep that a wake cuts short: the worker and the webhook dispatcher poll on an interval, and work created
// in this process wakes them at once. A wake that arrives while the loop is busy is kept, so the loop goes round
// once more instead of sleeping through it.

export interface Sleeper {
  /** Cuts the current sleep short, or the next one if the loop is awake. */
  wake(): void;
  /** Called at the top of each round: wakes before this point have been seen. */
  reset(): void;
  /** Sleeps up to `ms`, less if woken; not at all when a wake is pending or `stopped()` says so. */
  sleep(ms: number, stopped?: () => boolean): Promise<void>;
}

export function createSleeper(): Sleeper {
  let pending = false;
  let wakeSleeper: (() => void) | null = null;
  return {
    wake() {
      pending = true;
      wakeSleeper?.();
    },
    reset() {
      pending = false;
    },
    sleep(ms, stopped = () => false) {
      if (pending || stopped()) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeSleeper = null;
          resolve();
        }
        wakeSleeper = done;
      });
    },
  };
}
