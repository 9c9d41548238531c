declare module 'node-gyp-build' {
  /** Loads the prebuilt or locally built addon of the package rooted at `dir`. */
  function load(dir: string): unknown;
  namespace load {
    /**
     * The path of the addon `load(dir)` would load (build/Release, build/Debug, then the best
     * match in prebuilds/<platform>-<arch>/); throws "No native build was found ..." when none.
     */
    function resolve(dir: string): string;
  }
  export = load;
}
