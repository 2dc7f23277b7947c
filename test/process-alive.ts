// Test helper: is there still a process with this pid? Signal 0 checks without sending anything (a
// zombie not yet reaped still counts, as for kill(2)). Used by tests that check nothing is left running.

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
