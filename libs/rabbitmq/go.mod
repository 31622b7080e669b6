module github.com/backend-prep/backend-prep/libs/rabbitmq

go 1.26.0
