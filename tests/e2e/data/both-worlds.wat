;; Exports both `wasi:cli/run` and `worldhost:probe/ping`: command and probe claim it equally.
(component
  (core module $m
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run-instance))
  (instance $ping-instance (export "ping" (func $run)))
  (export "worldhost:probe/ping@0.1.0" (instance $ping-instance)))
