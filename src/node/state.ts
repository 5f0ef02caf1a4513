/** Applies a state patch: an empty-string value deletes the key (docs/protocol.md#rpc-calls). */
export function mergeState(
  target: Record<string, string>,
  patch: Record<string, string> | undefined,
): boolean {
  if (!patch) return false;
  let changed = false;
  // for-in, not Object.entries: no array per key on a path every connection takes.
  for (const k in patch) {
    if (!Object.hasOwn(patch, k)) continue;
    const v = patch[k];
    if (v === "") {
      if (k in target) {
        delete target[k];
        changed = true;
      }
    } else if (target[k] !== v) {
      target[k] = v;
      changed = true;
    }
  }
  return changed;
}
