/**
 * `memoUntilFailure(fn)`: calls `fn` once and hands every caller the same promise,
 * unless it rejects: then the next call tries again. For lookups that do not change
 * while a process runs (an image id, a negotiated API version) but may fail for a while.
 */
export function memoUntilFailure<T>(fn: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= fn().catch((err: unknown) => {
      pending = undefined;
      throw err;
    }));
}
