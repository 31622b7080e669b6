module example.com/configmod

go 1.26.0
