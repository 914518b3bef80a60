/**
 * Per-instance locks (in the director process): a deploy step and a recovery never
 * work on the same instance at once. A deploy holds its deployment's lock for the
 * whole task but an instance's lock only while it works on that instance, so the
 * health monitor can recover the other instances meanwhile instead of waiting
 * for the whole deploy.
 */
export class InstanceLocks {
  private readonly held = new Map<string, Promise<void>>();

  /** Waits for the instance's lock; resolves to its release function. */
  async lock(id: string): Promise<() => void> {
    for (;;) {
      const current = this.held.get(id);
      if (!current) break;
      await current;
    }
    let release!: () => void;
    this.held.set(
      id,
      new Promise<void>((resolve) => {
        release = () => {
          this.held.delete(id);
          resolve();
        };
      }),
    );
    return release;
  }

  /** Takes the lock if it is free; undefined when someone holds it. */
  tryLock(id: string): (() => void) | undefined {
    if (this.held.has(id)) return undefined;
    let release!: () => void;
    this.held.set(
      id,
      new Promise<void>((resolve) => {
        release = () => {
          this.held.delete(id);
          resolve();
        };
      }),
    );
    return release;
  }

  isLocked(id: string): boolean {
    return this.held.has(id);
  }
}
