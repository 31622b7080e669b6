module github.com/backend-prep/backend-prep/libs/brokertest

go 1.26.0
