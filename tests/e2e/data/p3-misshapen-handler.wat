;; A component that exports `wasi:http/handler@0.3.0` with a `handle` of the wrong shape
;; (`func()`, as from a WIT that is not wasi:http's): refused before the server listens.
(component
  (core module $m
    (func (export "handle")))
  (core instance $i (instantiate $m))
  (func $handle (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/handler@0.3.0" (instance $handler)))
