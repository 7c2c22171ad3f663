// WGSL sources are imported as text (bundled into the binary by bun build --compile).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
