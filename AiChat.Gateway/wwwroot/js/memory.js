// The memory panel (core blocks, the change log, archival passages): being written (issue 11).
export function initMemory() {}
