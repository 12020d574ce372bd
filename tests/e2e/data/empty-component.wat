;; A component that imports and exports nothing: no handler recognises it.
(component)
