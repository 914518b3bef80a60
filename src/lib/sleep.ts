/** Promise-based sleep and polling with a deadline. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown by a probe to stop `waitFor` at once (the thing waited for will never come). */
export class GiveUp extends Error {}

/**
 * Calls `probe` every `intervalMs` until it returns a value other than undefined,
 * or throws `onTimeout()` once `timeoutMs` has passed.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  opts: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${why}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/**
 * A loop's wait between cycles that something else can cut short (`wake`): a wake
 * while the loop is busy makes its next wait end at once, so none is lost.
 */
export class Waker {
  private wakeNow?: () => void;
  private woken = false;

  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeNow = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeNow = done;
    });
  }

  wake(): void {
    if (this.wakeNow) this.wakeNow();
    else this.woken = true;
  }
}
