// The budget gauge and usage chart: being written (issue 11).
export function initBudget() {}
