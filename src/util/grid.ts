// Dispatch geometry shared by ops (kernels/) and the GPU layer.

/** Workgroup grid for `total` workgroups, split over x and y to respect the 65535 per-dimension limit. */
export function grid(total: number): [number, number, number] {
  const t = Math.max(1, total);
  if (t <= 65535) return [t, 1, 1];
  const y = Math.ceil(t / 65535);
  return [Math.ceil(t / y), y, 1];
}
