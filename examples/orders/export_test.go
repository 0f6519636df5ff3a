package orders

// WithDefaultForTest exposes the upcaster to the external tests.
var WithDefaultForTest = withDefault
