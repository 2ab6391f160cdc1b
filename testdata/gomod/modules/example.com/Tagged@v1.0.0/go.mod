module example.com/Tagged

go 1.21
