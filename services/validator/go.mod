module github.com/backend-prep/backend-prep/services/validator

go 1.26.0
