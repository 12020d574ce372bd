;; A core module in text form: worldhost runs components, and says so.
(module
  (func (export "_start")))
