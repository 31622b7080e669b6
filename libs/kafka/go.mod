module github.com/backend-prep/backend-prep/libs/kafka

go 1.26.0
