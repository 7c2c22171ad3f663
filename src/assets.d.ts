// Asset imports: WGSL sources as text (bundled into the binary by bun build --compile).
declare module '*.wgsl' {
  const source: string;
  export default source;
}

// Files embedded with `with { type: 'file' }` import as their path.
declare module '*.safetensors' {
  const path: string;
  export default path;
}
