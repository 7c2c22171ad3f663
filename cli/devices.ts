// fla devices: the WebGPU adapters found, with the features and limits that choose kernels.
import { fmtBytes, KERNEL_FEATURES, listAdapters } from '../src/gpu/device.ts';

export async function devicesCommand(opts: { json?: boolean }): Promise<number> {
  const adapters = await listAdapters();
  const rows = adapters.map(({ summary: s }, i) => ({
    device: `gpu:${i}`, name: s.name, vendor: s.vendor, backend: s.backend, type: s.type,
    binding: s.binding, bindingVersion: s.bindingVersion,
    features: KERNEL_FEATURES.filter(f => s.features.includes(f)),
    subgroupMatrixConfigs: s.subgroupMatrixConfigs.map(c => `${c.componentType} ${c.M}x${c.N}x${c.K}->${c.resultComponentType}`),
    subgroupSize: s.subgroupMinSize === s.subgroupMaxSize ? s.subgroupMinSize : `${s.subgroupMinSize}-${s.subgroupMaxSize}`,
    maxStorageBufferBindingSize: s.limits.maxStorageBufferBindingSize, maxBufferSize: s.limits.maxBufferSize,
    maxComputeWorkgroupStorageSize: s.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: s.limits.maxComputeInvocationsPerWorkgroup,
  }));
  if (opts.json) {
    process.stdout.write(JSON.stringify({ adapters: rows, cpu: true }, null, 2) + '\n');
    return 0;
  }
  for (const r of rows) {
    process.stdout.write(`${r.device}  ${r.name}\n`
      + `        backend ${r.backend}, type ${r.type}, vendor ${r.vendor}; binding ${r.binding} ${r.bindingVersion}\n`
      + `        features: ${r.features.join(', ') || 'none'}; subgroup size ${r.subgroupSize}\n`
      + (r.subgroupMatrixConfigs.length ? `        subgroup matrices: ${r.subgroupMatrixConfigs.join(', ')}\n` : '')
      + `        max binding ${fmtBytes(r.maxStorageBufferBindingSize!)}, max buffer ${fmtBytes(r.maxBufferSize!)}, `
      + `workgroup memory ${fmtBytes(r.maxComputeWorkgroupStorageSize!)}, invocations ${r.maxComputeInvocationsPerWorkgroup}\n`);
  }
  if (!rows.length) process.stdout.write('no WebGPU adapter found (fla runs on the CPU)\n');
  process.stdout.write('cpu     TypeScript reference backend (--device cpu)\n');
  return 0;
}
