module seesaw/bench/go-echo

go 1.19
