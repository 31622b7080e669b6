module github.com/backend-prep/backend-prep/services/notifier

go 1.26.0
