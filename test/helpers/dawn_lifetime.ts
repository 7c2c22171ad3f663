// Run by test/regular/unit/dawn_lifetime.test.ts in a child process: a dawn.node device from loadBinding, with the
// caller keeping no reference to the GPU instance, through 300 awaited error scopes, forced GCs and timer turns.
import { loadBinding } from '../../src/gpu/binding.ts';

async function device(): Promise<GPUDevice> {
  const adapter = await (await loadBinding('dawn')).gpu.requestAdapter();
  if (!adapter) { console.log('no adapter'); process.exit(0); }
  return adapter.requestDevice();
}

const d = await device();
for (let i = 0; i < 300; i++) {
  d.pushErrorScope('validation');
  await d.popErrorScope();
  if (i % 10 === 0) Bun.gc(true);
  await new Promise(r => setTimeout(r, 0));
}
console.log('done');
