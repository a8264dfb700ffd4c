module github.com/libserf/libserf/bindings/go

go 1.19
