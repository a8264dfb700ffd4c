module github.com/libserf/libserf/examples/go

go 1.19

require github.com/libserf/libserf/bindings/go v0.0.0

replace github.com/libserf/libserf/bindings/go => ../../bindings/go
