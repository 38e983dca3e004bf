/** The stylesheet is imported for its side effect: esbuild emits it as the bundle's CSS file. */
declare module '*.css';
