module github.com/backend-prep/backend-prep/services/order-api

go 1.26.0
