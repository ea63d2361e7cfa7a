module seesaw/bench/go-chat

go 1.19
