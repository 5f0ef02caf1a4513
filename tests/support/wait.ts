/** Polls `pred` until it holds; fails after `timeoutMs` naming `what` (for conditions no event announces). */
export async function waitUntil(
  pred: () => boolean,
  what = "condition",
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
