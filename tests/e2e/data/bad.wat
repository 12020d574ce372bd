;; Malformed text: the closing parenthesis of the function is missing.
(component
  (core module (func (export "f"))
