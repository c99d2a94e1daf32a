from django.urls import path

from . import views

app_name = "contacts"
urlpatterns = [
    path("", views.contact_list, name="list"),
    path("import/", views.import_page, name="import"),
    path("import/<uuid:job_id>/", views.import_job_page, name="import-job"),
]
