/**
 * The part of TypeBox the message schemas use, through one module. The build replaces this
 * module's output with a single-file bundle of it (scripts/bundle-typebox.mjs): TypeBox ships as
 * ~220 small ES modules, and loading them was ~100 ms of every Shoal process's start (the driver
 * and each worker), most of it the loader opening and compiling files one by one. Without the
 * bundler (a build without dev dependencies) this is the plain re-export, and everything works
 * the same, only slower to load.
 */
export { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
export { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
