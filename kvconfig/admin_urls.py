app_name = "kvadmin"
urlpatterns: list = []
