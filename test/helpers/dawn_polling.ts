// Spawned by test/regular/unit/dawn_polling.test.ts: opens the first adapter through dawn.node, counts the native
// callbacks dawn.node's polling loop hands setImmediate while ~0.3 s of lavapipe work (clears of a 64 MiB buffer)
// is awaited, and prints `<adapter type> <calls> <ms>`.
process.env.FLA_WEBGPU = 'dawn';
const g = globalThis as any;
const setImmediateWas = g.setImmediate;
let calls = 0;
g.setImmediate = function (this: unknown, fn: any, ...args: unknown[]) {
  if (typeof fn === 'function' && Function.prototype.toString.call(fn).includes('[native code]')) calls++;
  return setImmediateWas.call(this, fn, ...args);
};
const { Gpu } = await import('../../src/gpu/device.ts');   // after the wrapper: the binding loads with the device module
const gpu = await Gpu.create();
const buf = gpu.buffer(64 << 20, 'polling probe');
calls = 0;
const t0 = performance.now();
while (performance.now() - t0 < 300) {
  const enc = gpu.device.createCommandEncoder();
  for (let i = 0; i < 4; i++) enc.clearBuffer(buf);
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
}
console.log(`${gpu.summary.type} ${calls} ${(performance.now() - t0).toFixed(0)}`);

export {};
