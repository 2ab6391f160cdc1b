module example.com/color

go 1.21

require example.com/fmtx v1.2.0
