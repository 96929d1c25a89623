import { register } from "node:module";
register("./host-stub.mjs", import.meta.url);
