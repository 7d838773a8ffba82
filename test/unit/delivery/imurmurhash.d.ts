declare module 'imurmurhash' {
  interface MurmurHash3State {
    hash(key: string): MurmurHash3State;
    result(): number;
    reset(seed?: number): MurmurHash3State;
  }
  function MurmurHash3(key?: string, seed?: number): MurmurHash3State;
  export default MurmurHash3;
}
