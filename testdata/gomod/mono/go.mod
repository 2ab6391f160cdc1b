module example.com/mono

go 1.22

require (
	example.com/Tagged v1.0.0
	example.com/color v1.1.0
	example.com/fast v1.0.0
	example.com/greet v1.0.0
	example.com/local v0.0.0
	example.com/patched v1.0.0
	example.com/shipped v1.0.0
)

// Stale on purpose: color v1.1.0 needs v1.2.0, so minimal version selection picks v1.2.0.
require example.com/fmtx v1.1.0 // indirect

replace example.com/local => ./third_party/local
