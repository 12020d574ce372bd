;; A command built in part against a release candidate of WASI 0.3: it imports
;; `wasi:cli/environment@0.3.0-rc-2026-03-15`, which no wasmtime 48 linker provides.
(component
  (import "wasi:cli/environment@0.3.0-rc-2026-03-15" (instance))
  (core module $m
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $run-instance)))
