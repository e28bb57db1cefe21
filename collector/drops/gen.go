package drops

// Regenerate the committed eBPF object and Go bindings (needs clang, llvm
// and libbpf-dev; CI does not regenerate, `go build` needs neither):
//
//	go generate ./collector/drops
//
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type drop_key drops drops.bpf.c
